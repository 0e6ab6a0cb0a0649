"""One module per command: ``add(sub)`` declares it, ``execute(args)`` runs it."""
