"""actsac.drivers"""
