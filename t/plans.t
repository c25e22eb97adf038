# SPDX-License-Identifier: Apache-2.0
# GET /v1/public/signup/plans/{tenant_slug} against the real database.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET);
use Test::More ();
use lib 't/lib';
use HydraTest qw(dbh reset_db add_tenant get_json);

plan tests => 26, have_lwp;

reset_db();
add_tenant(slug => 'off-co', enabled => 0);
add_tenant(slug => 'globex',
           plans => [['gold', '$99/mo', ['everything']],
                     ['secret', '$1/mo', [], 0, 0]]);
add_tenant(slug => 'acme', plans => []);

my $base = '/v1/public/signup/plans';

# the demo tenant's public plans, in display order, nothing private
my $res = GET "$base/demo";
ok t_cmp($res->code, 200, 'demo plans: 200');
ok t_cmp(scalar $res->header('Content-Type'), qr{^application/json},
         'JSON content type');
my $plans = get_json($res);
ok t_cmp(join(',', map { $_->{name} } @$plans), 'starter,pro,business',
         'plans in display order, internal plan hidden');
ok t_cmp($plans->[0]{price}, '$5/mo', 'price');
ok t_cmp(join('|', @{ $plans->[1]{features} }),
         '10 sites|50 GB SSD|Free SSL|Daily backups', 'features in order');
ok t_cmp(join(',', sort keys %{ $plans->[0] }),
         'description,features,name,price', 'exactly the contract fields');
ok t_cmp(ref $plans->[2]{features}, 'ARRAY', 'features is an array');

# caching: ETag, Cache-Control, 304 on a matching If-None-Match
my $etag = $res->header('ETag');
ok defined $etag && $etag =~ /^"[0-9a-f]+"$/;
ok t_cmp(scalar $res->header('Cache-Control'), qr/max-age=\d+/,
         'Cache-Control');
$res = GET "$base/demo", 'If-None-Match' => $etag;
ok t_cmp($res->code, 304, 'matching If-None-Match: 304');
ok t_cmp($res->content, '', '304 has no body');
$res = GET "$base/demo", 'If-None-Match' => '"other", ' . $etag;
ok t_cmp($res->code, 304, 'ETag in a list: 304');
$res = GET "$base/demo", 'If-None-Match' => '"0000"';
ok t_cmp($res->code, 200, 'other ETag: 200');
# a change in the data changes the ETag
dbh()->do("UPDATE plans SET price = '\$6/mo' WHERE name = 'starter'
           AND tenant_id = (SELECT id FROM tenants WHERE slug = 'demo')");
$res = GET "$base/demo", 'If-None-Match' => $etag;
ok t_cmp($res->code, 200, 'changed plans: 200 despite the old ETag');
ok $res->header('ETag') ne $etag;
dbh()->do("UPDATE plans SET price = '\$5/mo' WHERE name = 'starter'
           AND tenant_id = (SELECT id FROM tenants WHERE slug = 'demo')");

# every 404 case
for my $slug ('nosuch', 'off-co', 'globex') {
    $res = GET "$base/$slug";
    ok t_cmp($res->code . ' ' . $res->content,
             '404 {"detail":"Tenant not found"}', "404 for $slug");
}
# a served tenant with no public plan: an empty list
$res = GET "$base/acme";
ok t_cmp($res->code . ' ' . $res->content, '200 []', 'no plans: []');

# the second vhost serves globex only
{
    Apache::TestRequest::module('vhost_b');
    $res = GET "$base/globex";
    ok t_cmp($res->code, 200, 'vhost_b serves globex');
    my $g = get_json($res);
    ok t_cmp(join(',', map { $_->{name} } @$g), 'gold',
             'globex: public plans only');
    $res = GET "$base/demo";
    ok t_cmp($res->code, 404, 'vhost_b does not serve demo');

    Apache::TestRequest::module('vhost_all');
    ok t_cmp(GET("$base/globex")->code, 200, '* serves globex');
    ok t_cmp(GET("$base/demo")->code, 200, '* serves demo');
    ok t_cmp(GET("$base/off-co")->code, 404, '* still hides a disabled tenant');
    Apache::TestRequest::module('default');
}
ok t_cmp(GET("$base/demo")->code, 200, 'back on the default vhost');
