-- Applies fine; must stay applied when 0002 fails.
create table dbbroken.kept (id int primary key);
