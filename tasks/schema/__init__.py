"""The film's plain data types, in the trade's own words: no I/O, no behaviour beyond
derived properties. Planning, rendering and delivery are operations over them elsewhere.
"""
