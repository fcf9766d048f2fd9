from da_app.main import main

raise SystemExit(main())
