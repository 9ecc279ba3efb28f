import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { dropDatabase } from './support/pgAdmin';

/*
 * The test stores' clean-up drops databases with connections still open. A connection of a role
 * the test role may not signal (as an autovacuum worker is) makes `drop … with (force)` fail;
 * dropDatabase then waits it out with a plain DROP. Needs the local PostgreSQL's superuser
 * (`su postgres`), as on the machines scripts/services.sh sets up; skipped elsewhere.
 */

const adminUrl = process.env.DATABASE_URL!;
const local = new URL(adminUrl).hostname === '127.0.0.1' && spawnSync('su', ['postgres', '-c', 'true']).status === 0;
const maybe = local ? test : test.skip;

async function exists(name: string): Promise<boolean> {
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return (await c.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
  } finally {
    await c.end();
  }
}

maybe('a database held open by a process the test role may not terminate is dropped once that process leaves', async () => {
  const name = `quiz_drop_${randomBytes(4).toString('hex')}`;
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`create database "${name}"`);
  await c.end();
  const port = new URL(adminUrl).port || '5432';
  // the superuser holds the database for 1.5 s
  const holder = spawn('su', ['postgres', '-c', `psql -X -q -p ${port} -d ${name} -c "select pg_sleep(1.5)"`], { stdio: 'ignore' });
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  try {
    // wait until the holder is connected
    for (let i = 0; i < 50; i++) {
      const probe = new Client({ connectionString: adminUrl });
      await probe.connect();
      const n = (await probe.query('select count(*)::int as n from pg_stat_activity where datname = $1', [name])).rows[0].n;
      await probe.end();
      if (n > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await dropDatabase(adminUrl, name);
    expect(await exists(name)).toBe(false);
  } finally {
    await exited;
    if (await exists(name)) spawnSync('su', ['postgres', '-c', `psql -X -q -p ${port} -c 'drop database if exists "${name}"'`]);
  }
});
