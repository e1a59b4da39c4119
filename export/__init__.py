"""actsac.export"""
