# SPDX-License-Identifier: Apache-2.0
# The module's URLs map to no file (hs_translate_name/hs_map_to_storage):
# core's directory walk - a stat and an .htaccess lookup for every
# component of the path - is skipped for them. Shown with a broken
# .htaccess in DocumentRoot/v1 (AllowOverride All there, extra.conf.in):
# a static file below it answers 500, the API below it answers as usual.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET POST);
use File::Path qw(make_path remove_tree);
use lib 't/lib';
use HydraTest qw(reset_db);

plan tests => 5, have_lwp;

reset_db();
my $v1 = Apache::Test::vars('documentroot') . '/v1';
make_path("$v1/public/signup");
open my $f, '>', "$v1/static.txt" or die "$v1/static.txt: $!";
print $f "static\n";
close $f;
open my $h, '>', "$v1/.htaccess" or die "$v1/.htaccess: $!";
print $h "ThisIsNoDirective at all\n";
close $h;

my $static = GET('/v1/static.txt');
ok t_cmp($static->code, 500, 'a static file below the broken .htaccess: 500 (it is read there)');
ok t_cmp(GET('/v1/public/signup/plans/demo')->code, 200,
         'GET plans below it: 200 (no directory walk)');
my $s = POST('/v1/public/signup', content => '{"company_name": "No File",'
             . ' "email": "nofile@example.com", "tenant_slug": "demo"}',
             'Content-Type' => 'application/json');
ok t_cmp($s->code, 201, 'POST signup below it: 201');
ok t_cmp(GET('/v1/public/signup/openapi.json')->code, 200, 'openapi.json: 200');
ok t_cmp(POST('/v1/public/signup/verify', content => '{}',
              'Content-Type' => 'application/json')->code, 422,
         'verify with a bad body: 422 from the module, not 500');

remove_tree($v1);
