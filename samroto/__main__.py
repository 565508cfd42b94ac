from samroto.cli.main import main

raise SystemExit(main())
