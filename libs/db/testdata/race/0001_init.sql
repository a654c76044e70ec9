-- Used by the concurrent-migrate test: a second run of this file would fail on the insert.
create table dbrace.once (id int primary key);
insert into dbrace.once values (1);
