# exo-ipex as a flake: the runtime (packages.exo-ipex, the default), its Python binding
# (packages.python-exo-ipex), EXO's Intel variant (packages.exo-intel), an overlay, a NixOS
# module (services.exo-intel), a development shell and checks. README.md, "NixOS", says how to
# use them. The expressions are in nix/.
{
  description = "exo-ipex: a C runtime for LLM inference on Intel hardware, and EXO's Intel variant";

  inputs = {
    # The release and revision EXO's own flake.lock pins at b5375f8, so exo-intel and EXO's
    # environment come from one nixpkgs.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    # EXO at the revision docs/exo-ipex.patch is written against (bindings/python/tests check
    # the patch against EXO's files at that revision).
    exo = {
      url = "github:exo-explore/exo/b5375f8cee4368d09e1ce96a56b9f81fb0bc81aa";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      exo,
    }:
    let
      inherit (nixpkgs) lib;
      # Level Zero, Intel's compute runtime and the CPU plugin's AVX-512 and AMX code: x86-64 Linux.
      systems = [ "x86_64-linux" ];
      # The version is the project's (CMakeLists.txt: project(exo_ipex VERSION x.y.z ...)).
      version = builtins.head (
        builtins.match ".*project\\(exo_ipex VERSION ([0-9.]+).*" (builtins.readFile ./CMakeLists.txt)
      );
      # One nixpkgs instance per system with both overlays, as llama.cpp's flake instantiates
      # its package sets once (instead of one instance per package).
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [
                self.overlays.default
                self.overlays.intel
              ];
            }
          )
        );
    in
    {
      overlays = {
        # exo-ipex and pythonPackages.exo-ipex.
        default = import ./nix/overlay.nix {
          src = self;
          inherit version;
        };
        # exo-intel: needs EXO's flake outputs for the host's system.
        intel = final: _prev: {
          exo-intel = final.callPackage ./nix/exo-intel.nix {
            exo = exo.packages.${final.stdenv.hostPlatform.system}.exo;
            exoDashboard = exo.packages.${final.stdenv.hostPlatform.system}.dashboard;
            exoSrc = exo;
          };
        };
      };

      packages = forAllSystems (pkgs: {
        default = pkgs.exo-ipex;
        exo-ipex = pkgs.exo-ipex;
        python-exo-ipex = pkgs.python3Packages.exo-ipex;
        exo-intel = pkgs.exo-intel;
      });

      # nix run: exo-run on the embedded default model (meta.mainProgram of the default package).
      apps = forAllSystems (pkgs: {
        exo-probe = {
          type = "app";
          program = "${pkgs.exo-ipex}/bin/exo-probe";
        };
        exo-intel = {
          type = "app";
          program = lib.getExe pkgs.exo-intel;
        };
      });

      devShells = forAllSystems (pkgs: {
        default = import ./nix/shell.nix { inherit pkgs; };
      });

      nixosModules = {
        exo-intel = import ./nix/module.nix self;
        default = self.nixosModules.exo-intel;
      };

      # nix flake check: the CTest suite (exo-ipex's doCheck), the binding's pytest suite
      # (python-exo-ipex), exo-intel's wrapper (applies docs/exo-ipex.patch to EXO's sources),
      # and the module evaluated in a NixOS system (nix/module-check.nix).
      checks = forAllSystems (pkgs: {
        inherit (pkgs) exo-ipex exo-intel;
        python-exo-ipex = pkgs.python3Packages.exo-ipex;
        module = import ./nix/module-check.nix {
          inherit pkgs nixpkgs;
          module = self.nixosModules.exo-intel;
        };
      });
    };
}
