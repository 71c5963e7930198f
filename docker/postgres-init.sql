-- The sync store lives beside Airflow's metadata database, in its own database.
CREATE DATABASE mlconn OWNER airflow;
