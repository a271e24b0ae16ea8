/*
 * crash.h: fault injection for the crash tests. A program started with
 * BATON_CRASH_AT=NAME kills itself with SIGKILL when it reaches the crash
 * point NAME, the way a power cut or the OOM killer would, so the tests
 * can check what survives each step of a move. With BATON_CRASH_ONCE=FILE
 * as well, only the first process to get there dies (it creates FILE), so
 * a restarted one carries on. Without the variables a crash point costs
 * one getenv.
 */
#ifndef BATON_CRASH_H
#define BATON_CRASH_H

void crash_point(const char *name);

#endif
