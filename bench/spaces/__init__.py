"""Query spaces (conf/metric/): what "distance between two faces" means; see base.py."""
