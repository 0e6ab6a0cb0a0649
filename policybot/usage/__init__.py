"""The usage census's readers (issue 23): who calls each kfunc, from BPF C sources, compiled
objects, objects embedded in executables and libraries, and Debian packages."""
