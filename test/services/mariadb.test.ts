import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL, uniqueName } from '../support/services.js';

// Proves the MariaDB/MySQL every integration test uses is a real server.
describe('MariaDB service', () => {
  const database = uniqueName('dye_smoke');
  let connection: mysql.Connection;

  beforeAll(async () => {
    connection = await mysql.createConnection({ ...MYSQL, connectTimeout: 5000 });
    await connection.query(`CREATE DATABASE \`${database}\``);
  });

  afterAll(async () => {
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await connection.end();
  });

  it('reports its version', async () => {
    const [rows] = await connection.query<mysql.RowDataPacket[]>('SELECT VERSION() AS version');
    expect(String(rows[0]?.version)).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('round-trips rows through a table', async () => {
    await connection.query(`CREATE TABLE \`${database}\`.items (id INT PRIMARY KEY, name VARCHAR(32)) ENGINE=InnoDB`);
    await connection.execute(`INSERT INTO \`${database}\`.items (id, name) VALUES (?, ?), (?, ?)`, [1, 'apple', 2, 'pear']);
    const [rows] = await connection.query<mysql.RowDataPacket[]>(`SELECT id, name FROM \`${database}\`.items ORDER BY id`);
    expect(rows.map((row) => [row.id, row.name])).toEqual([
      [1, 'apple'],
      [2, 'pear'],
    ]);
  });
});
