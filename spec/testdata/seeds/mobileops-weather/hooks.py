import sys
print("hook", sys.argv[1], flush=True)
