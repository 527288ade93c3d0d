"""Looking inside a trained network: Captum attributions, filters and feature maps, predictions, the
randomization sanity check, confusion analysis, activation statistics, PNG figures and ensembles of runs.
"""
