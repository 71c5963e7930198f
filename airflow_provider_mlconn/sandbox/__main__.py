from airflow_provider_mlconn.sandbox.cli import main

raise SystemExit(main())
