-- Test migration: two statements, so it exercises multi-statement execution.
create table dbtest.items (
  id text primary key,
  size bigint not null,
  price numeric(10, 2),
  tags text[] not null default '{}',
  created_at timestamptz not null default now()
);
create index items_size on dbtest.items (size);
