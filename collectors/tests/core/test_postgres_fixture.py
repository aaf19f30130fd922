import psycopg


def test_each_test_gets_an_empty_database_of_its_own(postgres_db):
    with psycopg.connect(postgres_db) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        conn.execute("CREATE TABLE probe (id int)")
    assert tables == (0,)
