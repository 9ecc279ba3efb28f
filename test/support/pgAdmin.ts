import { Client } from 'pg';

/** PostgreSQL's insufficient_privilege and object_in_use. */
const INSUFFICIENT_PRIVILEGE = '42501';
const OBJECT_IN_USE = '55006';
const PLAIN_DROP_TRIES = 10;

/**
 * Creates database `name` as the role of `adminUrl` (quiz has CREATEDB); returns its URL (the
 * admin URL with the database's name as its path).
 */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Drops a database the tests (or the bench) made, even with connections still open to it.
 * `with (force)` terminates them, but a role without pg_signal_backend may not terminate an
 * autovacuum worker (a process of no role), which busy test databases attract: then the role's
 * own connections are terminated and a plain DROP, which stops autovacuum workers itself, is retried.
 */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    try {
      await admin.query(`drop database if exists "${name}" with (force)`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw err;
    }
    for (let attempt = 1; ; attempt++) {
      await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and usename = current_user and pid <> pg_backend_pid()`,
        [name],
      );
      try {
        await admin.query(`drop database if exists "${name}"`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== OBJECT_IN_USE || attempt >= PLAIN_DROP_TRIES) throw err;
        await sleep(300);
      }
    }
  } finally {
    await admin.end();
  }
}
