//! The standard fixture images every CLI test can rely on, built once per process
//! (deterministically, without network) and pushed to a registry on demand:
//!
//! | field        | repo          | tags                 | what                                           |
//! |--------------|---------------|----------------------|------------------------------------------------|
//! | `small`      | `small`       | `latest`, `1.0`      | OCI, one layer, labels + env                   |
//! | `multilayer` | `multilayer`  | `latest`             | OCI, 3 layers: overwrite, whiteout, symlink    |
//! | `docker`     | `docker`      | `latest`             | Docker schema2, two layers                     |
//! | `multiarch`  | `multiarch`   | `latest`             | OCI index: amd64, arm64/v8, arm/v7             |
//! | `dockerlist` | `dockerlist`  | `latest`             | Docker manifest list: amd64, arm64/v8          |
//! | `manytags`   | `manytags`    | `tag-000`..`tag-259` | 260 tags on one OCI manifest                   |

use std::ops::Deref;
use std::sync::OnceLock;

use super::image::{pseudo_random, Entry, Format, Image, ImageSpec, Index, Platform};
use super::registry::Registry;

/// A single-platform fixture: the image plus where it lives.
#[derive(Clone, Debug)]
pub struct ImageFixture {
    pub repo: String,
    pub tags: Vec<String>,
    pub image: Image,
}

/// A multi-platform fixture.
#[derive(Clone, Debug)]
pub struct IndexFixture {
    pub repo: String,
    pub tags: Vec<String>,
    pub index: Index,
}

impl Deref for ImageFixture {
    type Target = Image;
    fn deref(&self) -> &Image {
        &self.image
    }
}

impl Deref for IndexFixture {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.index
    }
}

impl ImageFixture {
    pub fn push(&self, reg: &Registry) {
        self.image.push(&reg.client(), &self.repo, &self.tags);
    }
    /// `127.0.0.1:PORT/REPO:TAG`.
    pub fn tagged(&self, reg: &Registry, tag: &str) -> String {
        reg.reference(&format!("{}:{tag}", self.repo))
    }
    /// `127.0.0.1:PORT/REPO@sha256:…`.
    pub fn by_digest(&self, reg: &Registry) -> String {
        reg.reference(&format!("{}@{}", self.repo, self.image.digest))
    }
}

impl IndexFixture {
    pub fn push(&self, reg: &Registry) {
        self.index.push(&reg.client(), &self.repo, &self.tags);
    }
    pub fn tagged(&self, reg: &Registry, tag: &str) -> String {
        reg.reference(&format!("{}:{tag}", self.repo))
    }
    pub fn by_digest(&self, reg: &Registry) -> String {
        reg.reference(&format!("{}@{}", self.repo, self.index.digest))
    }
}

/// All standard fixtures; see the module docs.
#[derive(Clone, Debug)]
pub struct Fixtures {
    pub small: ImageFixture,
    pub multilayer: ImageFixture,
    pub docker: ImageFixture,
    pub multiarch: IndexFixture,
    pub dockerlist: IndexFixture,
    pub manytags: ImageFixture,
}

/// Number of tags in `manytags`.
pub const MANY_TAGS: usize = 260;

impl Fixtures {
    /// The fixtures, built on first use (identical bytes every time).
    pub fn get() -> &'static Fixtures {
        static F: OnceLock<Fixtures> = OnceLock::new();
        F.get_or_init(build)
    }

    /// Pushes every fixture to `reg` and returns their descriptions.
    pub fn push_all(reg: &Registry) -> &'static Fixtures {
        let f = Fixtures::get();
        f.small.push(reg);
        f.multilayer.push(reg);
        f.docker.push(reg);
        f.multiarch.push(reg);
        f.dockerlist.push(reg);
        f.manytags.push(reg);
        f
    }

    /// Every repository name the fixtures use.
    pub fn repos(&self) -> Vec<&str> {
        vec![
            &self.small.repo,
            &self.multilayer.repo,
            &self.docker.repo,
            &self.multiarch.repo,
            &self.dockerlist.repo,
            &self.manytags.repo,
        ]
    }
}

/// A plain-HTTP, no-auth registry with all fixtures, shared by the whole process.
/// Strictly read-only: tests that push, delete or stop use their own [`Registry`].
pub fn shared_registry() -> (&'static Registry, &'static Fixtures) {
    static REG: OnceLock<Registry> = OnceLock::new();
    let reg = REG.get_or_init(|| {
        let reg = Registry::plain();
        Fixtures::push_all(&reg);
        reg
    });
    (reg, Fixtures::get())
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn base_entries(name: &str) -> Vec<Entry> {
    vec![
        Entry::dir("bin"),
        Entry::exec(
            "bin/hello",
            format!("#!/bin/sh\necho 'hello from {name}'\n"),
        ),
        Entry::dir("etc"),
        Entry::file("etc/hostname", format!("{name}\n")),
        Entry::file(
            "etc/os-release",
            "NAME=\"scry fixture\"\nID=scry\nVERSION_ID=1\n",
        ),
        Entry::dir("usr"),
        Entry::dir("usr/bin"),
        Entry::symlink("usr/bin/hello", "../../bin/hello"),
        Entry::dir("tmp"),
    ]
}

/// Builds the fixture set from scratch (what [`Fixtures::get`] caches).
pub fn build() -> Fixtures {
    let mut small_layer = base_entries("small");
    small_layer.extend([
        Entry::dir("data"),
        Entry::file("data/random.bin", pseudo_random(32 * 1024, 1)),
        Entry::file("data/empty", Vec::new()),
    ]);
    let small = ImageSpec::new(Format::Oci)
        .label("org.opencontainers.image.title", "small")
        .label("com.example.scry.fixture", "small")
        .env("SCRY_FIXTURE=small")
        .env("GREETING=hello world")
        .annotation("org.opencontainers.image.description", "small fixture")
        .layer("ADD rootfs / # small", small_layer)
        .build();

    let numbers: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    let multilayer = ImageSpec::new(Format::Oci)
        .label("com.example.scry.fixture", "multilayer")
        .env("SCRY_FIXTURE=multilayer")
        .layer("ADD base / # layer 1", {
            let mut e = base_entries("multilayer");
            e.extend([
                Entry::dir("etc/removed.d"),
                Entry::file("etc/removed.d/gone.conf", "gone = true\n"),
                Entry::file("etc/obsolete", "to be whited out\n"),
                Entry::file("etc/version", "1\n"),
            ]);
            e
        })
        .layer(
            "ADD data / # layer 2",
            vec![
                Entry::dir("usr/share"),
                Entry::dir("usr/share/numbers"),
                Entry::file("usr/share/numbers/list.txt", numbers),
                Entry::file("etc/version", "2\n"),
            ],
        )
        .layer(
            "RUN cleanup # layer 3",
            vec![
                Entry::whiteout("etc/obsolete"),
                Entry::whiteout("etc/removed.d"),
                Entry::file("etc/version", "3\n"),
                Entry::symlink("etc/current-version", "version"),
                Entry::file("data.bin", pseudo_random(100 * 1024, 3)),
            ],
        )
        .build();

    let docker = ImageSpec::new(Format::Docker)
        .label("com.example.scry.fixture", "docker")
        .env("SCRY_FIXTURE=docker")
        .layer("ADD base / # docker 1", base_entries("docker"))
        .layer(
            "COPY app /app # docker 2",
            vec![
                Entry::dir("app"),
                Entry::exec("app/run.sh", "#!/bin/sh\nexec /bin/hello\n"),
            ],
        )
        .build();

    let arch_image = |format: Format, arch: &str, variant: Option<&str>, repo: &str| {
        let tag = match variant {
            Some(v) => format!("{arch}/{v}"),
            None => arch.to_string(),
        };
        ImageSpec::new(format)
            .platform(Platform::linux(arch, variant))
            .label("com.example.scry.fixture", repo)
            .label("com.example.scry.platform", &tag)
            .layer("ADD base / # shared", base_entries(repo))
            .layer(
                &format!("ADD arch / # {tag}"),
                vec![Entry::file("etc/arch", format!("linux/{tag}\n"))],
            )
            .build()
    };
    let multiarch = Index::build(
        Format::Oci,
        vec![
            arch_image(Format::Oci, "amd64", None, "multiarch"),
            arch_image(Format::Oci, "arm64", Some("v8"), "multiarch"),
            arch_image(Format::Oci, "arm", Some("v7"), "multiarch"),
        ],
    );
    let dockerlist = Index::build(
        Format::Docker,
        vec![
            arch_image(Format::Docker, "amd64", None, "dockerlist"),
            arch_image(Format::Docker, "arm64", Some("v8"), "dockerlist"),
        ],
    );

    let manytags = ImageSpec::new(Format::Oci)
        .label("com.example.scry.fixture", "manytags")
        .layer(
            "ADD / # manytags",
            vec![Entry::file("manytags.txt", "one manifest, many tags\n")],
        )
        .build();

    Fixtures {
        small: ImageFixture {
            repo: "small".into(),
            tags: tags(&["latest", "1.0"]),
            image: small,
        },
        multilayer: ImageFixture {
            repo: "multilayer".into(),
            tags: tags(&["latest"]),
            image: multilayer,
        },
        docker: ImageFixture {
            repo: "docker".into(),
            tags: tags(&["latest"]),
            image: docker,
        },
        multiarch: IndexFixture {
            repo: "multiarch".into(),
            tags: tags(&["latest"]),
            index: multiarch,
        },
        dockerlist: IndexFixture {
            repo: "dockerlist".into(),
            tags: tags(&["latest"]),
            index: dockerlist,
        },
        manytags: ImageFixture {
            repo: "manytags".into(),
            tags: (0..MANY_TAGS).map(|i| format!("tag-{i:03}")).collect(),
            image: manytags,
        },
    }
}
