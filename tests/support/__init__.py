"""What the tests share: params builders, toy corpora and models, folder snapshots, servers and the
former hand-written implementations the library versions are tested against (``import support.x``)."""
