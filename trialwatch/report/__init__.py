"""`trialwatch report`: the DSMB packet - a self-contained HTML report of a data cut (issue #7)."""
