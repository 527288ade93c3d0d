"""The report's lessons: its experiments as named presets (with the report's accuracy, lesson, note and caveat)
and the findings that compare the lab's runs with the report.
"""
