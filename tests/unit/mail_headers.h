/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mail_headers.h - the header lines of a mail of src/core/mail.c, in the
 * order it writes them (a name, or the whole line where it is fixed): what
 * tests/unit/test_mail.c and fuzz/fuzz_mail.c check a message against.
 */
#ifndef HS_TEST_MAIL_HEADERS_H
#define HS_TEST_MAIL_HEADERS_H

static const char *const mail_headers[] = {
    "Date: ",
    "From: ",
    "To: ",
    "Subject: ",
    "Message-ID: ",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=UTF-8",
    "Content-Transfer-Encoding: quoted-printable",
    "Auto-Submitted: auto-generated"};
#define MAIL_NHEADERS (sizeof(mail_headers) / sizeof(mail_headers[0]))

#endif /* HS_TEST_MAIL_HEADERS_H */
