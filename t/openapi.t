# SPDX-License-Identifier: Apache-2.0
# GET <location>/openapi.json: the OpenAPI 3.1 document of the endpoints,
# with the constraints the validator enforces.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET POST);
use lib 't/lib';
use HydraTest qw(get_json);

plan tests => 14, have_lwp;

my $res = GET '/v1/public/signup/openapi.json';
ok t_cmp($res->code, 200, 'openapi.json: 200');
ok t_cmp(scalar $res->header('Content-Type'), qr{^application/json},
         'JSON');
my $doc = get_json($res) // {};
ok t_cmp($doc->{openapi}, '3.1.0', 'OpenAPI 3.1');
my $paths = $doc->{paths} // {};
ok t_cmp(join(',', sort keys %$paths),
         '/v1/public/signup,/v1/public/signup/jwks.json,'
         . '/v1/public/signup/plans/{tenant_slug},/v1/public/signup/verify',
         'every path, under the Location');
ok t_cmp(join(',', sort keys %{ $paths->{'/v1/public/signup'}{post}{responses} }),
         '201,404,409,413,415,422,429,503', 'signup responses');
ok t_cmp(join(',', sort keys %{ $paths->{'/v1/public/signup/verify'}{post}{responses} }),
         '200,400,422,429', 'verify responses');
my $s = $doc->{components}{schemas} // {};
my $sp = $s->{SignupRequest}{properties} // {};
ok t_cmp("$sp->{company_name}{minLength}-$sp->{company_name}{maxLength}",
         '1-200', 'company_name 1..200');
ok t_cmp($sp->{plan}{default}, 'starter', 'plan default');
ok t_cmp($sp->{plan}{maxLength}, 50, 'plan <= 50');
ok t_cmp("$sp->{tenant_slug}{minLength}-$sp->{tenant_slug}{maxLength}",
         '1-100', 'tenant_slug 1..100');
ok t_cmp(join(',', sort @{ $s->{SignupRequest}{required} }),
         'company_name,email,tenant_slug', 'required signup fields');
my $vp = $s->{VerifyRequest}{properties} // {};
ok t_cmp("$vp->{code}{minLength}-$vp->{code}{maxLength}", '6-6',
         'code exactly 6');
ok t_cmp($s->{TokenResponse}{properties}{token_type}{const}, 'bearer',
         'token_type');
ok t_cmp(POST('/v1/public/signup/openapi.json', content => '{}')->code, 405,
         'POST: 405');
