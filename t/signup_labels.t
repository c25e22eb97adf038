# SPDX-License-Identifier: Apache-2.0
# Site labels when many customers share a company name: the plain label
# first, then one past the highest numbered label in use, never "no label".
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json);

plan tests => 6, have_lwp;

reset_db();
my $tenant = add_tenant(slug => 'acme', nodes => [[1000, 0]]);
my $db = dbh();
my $ins = $db->prepare(
    "INSERT INTO customers (id, tenant_id, company_name, email, plan, site_url,
     status) VALUES (gen_random_uuid(), ?, 'Acme Corp', ?, 'starter', ?,
     'active')");
sub taken { $ins->execute($tenant, "owner$_[0]\@example.com",
                          "https://$_[1].acme.example.net") }

my $n = 0;
sub signup {
    $n++;
    my $res = post_json('/v1/public/signup',
        { company_name => 'Acme Corp', email => "new$n\@example.com",
          tenant_slug => 'acme' });
    return $res->code == 201 ? get_json($res)->{site_url} : 'HTTP ' . $res->code;
}

# only a numbered label in use: the plain one is still free
taken(1, 'acme-corp-7');
ok t_cmp(signup(), 'https://acme-corp.acme.example.net', 'plain label first');

# the plain one taken: one past the highest in use, not the first gap
ok t_cmp(signup(), 'https://acme-corp-8.acme.example.net',
         'one past the highest numbered label');

# 300 customers with the name: no probing limit is hit
taken($_ + 100, "acme-corp-$_") for 9 .. 300;
ok t_cmp(signup(), 'https://acme-corp-301.acme.example.net',
         'the 301st Acme Corp gets acme-corp-301');
# a label that only looks numbered does not count
taken(999, 'acme-corp-12x');
ok t_cmp(signup(), 'https://acme-corp-302.acme.example.net',
         'non-numeric suffixes are ignored');
# another company's labels are not this one's
taken(1000, 'acme-corporation-900');
ok t_cmp(signup(), 'https://acme-corp-303.acme.example.net',
         'a longer label with the same start is not counted');
my ($dups) = $db->selectrow_array(
    "SELECT count(*) - count(DISTINCT site_url) FROM customers WHERE tenant_id = ?",
    undef, $tenant);
ok t_cmp($dups, 0, 'every site_url distinct');
