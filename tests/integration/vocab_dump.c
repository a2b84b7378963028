/*
 * vocab_dump.c - prints daemon/vocab.c's value sets, one "set value" a line,
 * for sql_value_sets.bats to hold against the database's domains and the
 * spec's enums.
 */
#include <stdio.h>

#include "vocab.h"

int main(void)
{
	for (const struct vocab_set *s = vocab_sets; s->name; s++)
		for (const char *const *v = s->values; *v; v++)
			printf("%s %s\n", s->name, *v);
	return 0;
}
