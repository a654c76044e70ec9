-- A stand-in for a service's own table, changed in the same transaction as the outbox row.
create table obx.things (id text primary key, name text not null);
