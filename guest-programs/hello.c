/* hello: the smallest guest. Prints which architecture it was built for, its arguments (one
 * per line, argv[0] included) and the environment variable EMU_GREETING, then exits with
 * status (argc - 1) % 8, so a test sees argument passing, the environment and exit statuses.
 *
 *   $ ./hello a b            $ EMU_GREETING=hi ./hello
 *   hello from x86_64        hello from x86_64
 *   argc=3                   argc=1
 *   argv[0]=./hello          argv[0]=./hello
 *   argv[1]=a                EMU_GREETING=hi
 *   argv[2]=b
 *   EMU_GREETING is not set
 *   (exit status 2)          (exit status 0)
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  /* The pointer size tells the two builds apart at run time as well as at compile time. */
  printf("hello from %s\n", sizeof(void *) == 8 ? "x86_64" : "i386");
  printf("argc=%d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
  const char *greeting = getenv("EMU_GREETING");
  if (greeting != NULL)
    printf("EMU_GREETING=%s\n", greeting);
  else
    printf("EMU_GREETING is not set\n");
  return (argc - 1) % 8;
}
