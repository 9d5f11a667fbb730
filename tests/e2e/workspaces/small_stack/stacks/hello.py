import packaging
import six

print(f"hello from six {six.__version__} (framework) and packaging {packaging.__version__} (runtime)")
