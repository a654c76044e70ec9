-- The first statement succeeds, the second fails: the whole file must roll back.
create table dbbroken.half (id int primary key);
insert into dbbroken.missing_table values (1);
