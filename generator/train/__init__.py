"""Training the embedded models on the shapes data set (measure/shapes.py): `python -m generator.train`."""
