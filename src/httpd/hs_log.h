/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hs_log.h - numbered log messages. httpd's AH numbers are reserved for
 * httpd's own modules, so ours are "HS" plus five digits: 001xx
 * configuration, 002xx database, 003xx signup, 004xx verify, 005xx spool
 * and mail, 006xx rate limits, 007xx tokens, 008xx HTTP plumbing. Never
 * reuse a number; never log a code, token or secret.
 */
#ifndef HS_LOG_H
#define HS_LOG_H

#define HSLOGNO(n) "HS" #n ": "

#endif /* HS_LOG_H */
