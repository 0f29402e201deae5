"""One package per DVC stage, named as the stage (its work in ``stage.py``); :mod:`.base`, :mod:`.units` and :mod:`.executors` hold what they share."""
