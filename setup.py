"""Build of skattn's one optional C extension (the metadata is in pyproject.toml).

``_skattn_speedups`` is a vectorised float64 exp (src/_skattn_speedups.c). It is
optional: without a C compiler the build skips it and skattn uses numpy.exp, with the
same results up to rounding (both within about an ulp of the exact exp), only slower.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Add -O3 where the compiler takes GCC's flags (the loop must vectorise)."""

    def build_extensions(self):
        if self.compiler.compiler_type == "unix":
            for extension in self.extensions:
                extension.extra_compile_args = ["-O3"]
        super().build_extensions()


setup(
    ext_modules=[
        Extension("_skattn_speedups", sources=["src/_skattn_speedups.c"], optional=True)
    ],
    cmdclass={"build_ext": BuildExt},
)
