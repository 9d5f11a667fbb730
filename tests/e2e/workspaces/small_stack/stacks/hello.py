import six

print(f"hello from six {six.__version__}")
