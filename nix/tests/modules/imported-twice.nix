# Imported from two places: must be evaluated once (or `test.list' would
# get its entry twice).
{ test.list = [ "once" ]; }
