from napari_frugalseg.cli import main

raise SystemExit(main())
