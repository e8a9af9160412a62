from local_model_server.cli import main

raise SystemExit(main())
