package HydraTest;
# Shared helpers for the Apache::Test suite: the database (DBD::Pg, the
# same PostgreSQL the module uses), test tenants, JSON requests.
use strict;
use warnings FATAL => 'all';

use DBI ();
use JSON::PP ();
use Exporter 'import';
use Apache::TestRequest ();

our @EXPORT_OK = qw(dbh reset_db add_tenant post_json get_json json
                    spool_files);

my $json = JSON::PP->new->canonical->allow_nonref;
sub json { $json }

my $dbh;
sub dbh {
    return $dbh if $dbh && $dbh->ping;
    $dbh = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
                        { RaiseError => 1, AutoCommit => 1, PrintError => 0,
                          pg_enable_utf8 => 1 })
        or die "cannot connect to $ENV{HYDRA_PG_DSN}";
    return $dbh;
}

# Removes every tenant but demo (and demo's customers), then empties the
# spool, so each test file starts from the same state.
sub reset_db {
    my $db = dbh();
    $db->do("DELETE FROM customers");
    $db->do("DELETE FROM hydra_signup_mail_log");
    $db->do("DELETE FROM tenants WHERE slug <> 'demo'");
    $db->do("UPDATE nodes SET used = 0");
    for my $d (qw(new tmp cur)) {
        unlink glob "$ENV{HYDRA_STATE}/spool/$d/*";
    }
}

# add_tenant(slug, site_domain, [nodes: [capacity, used, kind, active]...],
#            enabled, [plans])
sub add_tenant {
    my (%a) = @_;
    my $db = dbh();
    my ($id) = $db->selectrow_array(
        "INSERT INTO tenants (slug, name, site_domain, signup_enabled)
         VALUES (?, ?, ?, ?) RETURNING id", undef,
        $a{slug}, $a{name} // ucfirst($a{slug}),
        $a{domain} // "$a{slug}.example.net", $a{enabled} // 1);
    my $pos = 0;
    for my $p (@{ $a{plans} // [['starter', '$5/mo', ['1 site']]] }) {
        $db->do("INSERT INTO plans (tenant_id, name, description, price,
                 features, position, public) VALUES (?, ?, ?, ?, ?, ?, ?)",
                undef, $id, $p->[0], "The $p->[0] plan", $p->[1], $p->[2],
                $p->[3] // ++$pos, $p->[4] // 1);
    }
    my $n = 0;
    for my $node (@{ $a{nodes} // [[100, 0]] }) {
        $n++;
        $db->do("INSERT INTO nodes (tenant_id, hostname, kind, capacity,
                 used, active) VALUES (?, ?, ?, ?, ?, ?)", undef, $id,
                "$a{slug}-node-$n.example.net", $node->[2] // 'shared',
                $node->[0], $node->[1] // 0, $node->[3] // 1);
    }
    return $id;
}

sub post_json {
    my ($url, $data, %h) = @_;
    my $body = ref $data ? $json->encode($data) : $data;
    return Apache::TestRequest::POST($url,
        'Content-Type' => 'application/json', %h, content => $body);
}

sub get_json {
    my ($res) = @_;
    my $d = eval { $json->decode($res->decoded_content) };
    return $d;
}

sub spool_files {
    my ($sub) = @_;
    return sort glob "$ENV{HYDRA_STATE}/spool/$sub/*";
}

1;
