import sys

if sys.argv[1:2] and sys.argv[1] in ("canary", "promote", "rollback"):
    # the declared rollout (evaluation gate): no TensorFlow import, quick enough for a kubectl workflow
    from training.promote import main as rollout_main

    sys.exit(rollout_main(sys.argv[1:]))

from training.cli import main

sys.exit(main())
