"""actsac.runtime"""
