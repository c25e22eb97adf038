# SPDX-License-Identifier: Apache-2.0
package PackageTest;
# What tests/package/*.t share: ports on 127.0.0.1 and the end of a log.
use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET ();

our @EXPORT_OK = qw(free_port port_busy tail_of slurp tenant_sql);

# A port nothing listens on (the kernel's pick, then closed), none of @not.
sub free_port {
    my %not = map { $_ => 1 } @_;
    while (1) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
            Proto => 'tcp', Listen => 1) or die "free port: $!";
        my $p = $s->sockport;
        close $s;
        return $p unless $not{$p};
    }
}

# True when something accepts a connection on 127.0.0.1:$p.
sub port_busy {
    my ($p) = @_;
    return defined IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $p, Proto => 'tcp', Timeout => 2);
}

# The last $n lines of $file (or why it cannot be read).
sub tail_of {
    my ($file, $n) = @_;
    open my $fh, '<', $file or return "($file: $!)";
    my @l = <$fh>;
    return join '', @l[($#l - $n + 1 < 0 ? 0 : $#l - $n + 1) .. $#l];
}

# The whole of $file, or '' when it cannot be read.
sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return <$fh> // '';
}

# The SQL that adds a tenant by hand, as a user of the packages would:
# tenant_sql(slug => S, name => N, plan => [name, description, price],
# node => [hostname, capacity]) (node optional).
sub tenant_sql {
    my (%a) = @_;
    my ($slug, $plan, $node) = @a{qw(slug plan node)};
    my $sql = <<"SQL";
INSERT INTO tenants (slug, name, site_domain, signup_enabled)
    VALUES ('$slug', '$a{name}', '$slug.example.net', true);
INSERT INTO plans (tenant_id, name, description, price, features, position, public)
    SELECT id, '$plan->[0]', '$plan->[1]', '$plan->[2]', ARRAY['1 site'], 1, true
    FROM tenants WHERE slug = '$slug';
SQL
    $sql .= <<"SQL" if $node;
INSERT INTO nodes (tenant_id, hostname, kind, capacity, used, active)
    SELECT id, '$node->[0]', 'shared', $node->[1], 0, true
    FROM tenants WHERE slug = '$slug';
SQL
    return $sql;
}

1;
