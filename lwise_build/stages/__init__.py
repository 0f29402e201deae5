"""One module per DVC stage, named as the stage; :mod:`.base` holds what they share."""
