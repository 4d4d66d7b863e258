"""``python -m benchmarks`` runs benchmarks.suite; ``--distributed`` benchmarks.distributed;
``--serve`` benchmarks.serve; ``--first-run`` benchmarks.first_run."""
import sys

if "--serve" in sys.argv[1:]:
    from benchmarks.serve import main as serve_main

    sys.exit(serve_main([arg for arg in sys.argv[1:] if arg != "--serve"]))

if "--first-run" in sys.argv[1:]:
    from benchmarks.first_run import main as first_run_main

    sys.exit(first_run_main([arg for arg in sys.argv[1:] if arg != "--first-run"]))

if "--distributed" in sys.argv[1:]:
    from benchmarks.distributed import main as distributed_main

    sys.exit(distributed_main([arg for arg in sys.argv[1:] if arg != "--distributed"]))

from benchmarks.suite import main  # noqa: E402

sys.exit(main())
