using System.Diagnostics;
using Pip.Torch.Native;

namespace Pip.Torch.Tests.Native;

public sealed class ElfVersionNeedPatcherTests
{
    private static readonly string[] Marker = [ElfVersionNeedPatcher.MarkerSymbol];

    /// <summary>The unpatched library as NuGet delivered it.</summary>
    private static string PackagedLibrary()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [Fact]
    public void Patch_PackagedLibTorchSharp_RewritesOnlyTheVernauxEntry()
    {
        byte[] original = File.ReadAllBytes(PackagedLibrary());
        byte[] patched = (byte[])original.Clone();

        ElfPatchOutcome outcome = ElfVersionNeedPatcher.Patch(patched, ElfVersionNeedPatcher.MissingVersion, ElfVersionNeedPatcher.ReplacementVersion, Marker, out string detail);

        outcome.Should().Be(ElfPatchOutcome.Patched, detail);
        int changed = original.Zip(patched).Count(p => p.First != p.Second);
        changed.Should().BeInRange(1, 8, "only vna_hash and vna_name of one entry may change");
        ElfVersionNeedPatcher.Patch((byte[])patched.Clone(), ElfVersionNeedPatcher.MissingVersion, ElfVersionNeedPatcher.ReplacementVersion, Marker, out _)
            .Should().Be(ElfPatchOutcome.NotNeeded, "a patched library no longer asks for the missing version");
    }

    [Fact]
    public void Patch_OtherSymbolBoundToVersion_Refuses()
    {
        byte[] bytes = File.ReadAllBytes(PackagedLibrary());

        // GLIBCXX_3.4.30 is used by real functions of libstdc++, so rewriting it must be refused.
        ElfVersionNeedPatcher.Patch(bytes, "GLIBCXX_3.4.30", ElfVersionNeedPatcher.ReplacementVersion, Marker, out string detail)
            .Should().Be(ElfPatchOutcome.Refused);
        detail.Should().Contain("GLIBCXX_3.4.30");
    }

    [Fact]
    public void Patch_NotElf_IsNotApplicable()
    {
        byte[] bytes = new byte[128];
        ElfVersionNeedPatcher.Patch(bytes, ElfVersionNeedPatcher.MissingVersion, ElfVersionNeedPatcher.ReplacementVersion, Marker, out _)
            .Should().Be(ElfPatchOutcome.NotApplicable);
    }

    [Fact]
    public void ElfHash_KnownVersionNames_MatchTheValuesLinkersWrite()
    {
        // The System V ELF hash, as the linker writes it into vna_hash.
        ElfVersionNeedPatcher.ElfHash("GLIBCXX_3.4.21").Should().Be(0x0297f871);
        ElfVersionNeedPatcher.ElfHash("GLIBCXX_3.4.32").Should().Be(0x0297f842);
    }

    [Fact]
    public void TestOutputFolder_LibTorchSharp_WasPatchedByTheBuildWhereTheSystemNeedsIt()
    {
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!OperatingSystem.IsLinux() || !File.Exists(output))
        {
            return;
        }

        string? libstdcxx = ElfVersionNeedPatcher.FindSystemLibStdCxx();
        bool systemHasVersion = libstdcxx is not null && ElfVersionNeedPatcher.MentionsVersion(File.ReadAllBytes(libstdcxx), ElfVersionNeedPatcher.MissingVersion);
        ElfPatchOutcome outcome = ElfVersionNeedPatcher.Patch(File.ReadAllBytes(output), ElfVersionNeedPatcher.MissingVersion, ElfVersionNeedPatcher.ReplacementVersion, Marker, out _);

        outcome.Should().Be(systemHasVersion ? ElfPatchOutcome.Patched : ElfPatchOutcome.NotNeeded,
            "the build patches the copy only when the system's libstdc++ lacks the version, and leaves it alone otherwise");
    }

    [Fact]
    public void MsBuildTask_FreshFolderWithPackagedLibrary_PatchesItWithoutManualStep()
    {
        string? libstdcxx = ElfVersionNeedPatcher.FindSystemLibStdCxx();
        if (!OperatingSystem.IsLinux() || libstdcxx is null || ElfVersionNeedPatcher.MentionsVersion(File.ReadAllBytes(libstdcxx), ElfVersionNeedPatcher.MissingVersion))
        {
            return; // Nothing to patch on this system; the task leaves the library alone (covered above).
        }

        string dir = Directory.CreateTempSubdirectory("pip-patch-").FullName;
        try
        {
            string native = Path.Combine(dir, "out", "runtimes", "linux-x64", "native");
            Directory.CreateDirectory(native);
            File.Copy(PackagedLibrary(), Path.Combine(native, "libLibTorchSharp.so"));
            string targets = Path.Combine(RepoRoot(), "src", "Pip.Torch", "buildTransitive", "Pip.Torch.targets");
            File.WriteAllText(Path.Combine(dir, "probe.proj"), $"""
                <Project>
                  <Import Project="{targets}" />
                  <Target Name="Probe"><PipPatchLibTorchSharp Directory="{Path.Combine(dir, "out")}" /></Target>
                </Project>
                """);

            var start = new ProcessStartInfo("dotnet", ["msbuild", "probe.proj", "-t:Probe", "-nologo", "-v:m"])
            {
                WorkingDirectory = dir,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start)!;
            string log = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();

            process.ExitCode.Should().Be(0, log);
            ElfVersionNeedPatcher.Patch(File.ReadAllBytes(Path.Combine(native, "libLibTorchSharp.so")), ElfVersionNeedPatcher.MissingVersion, ElfVersionNeedPatcher.ReplacementVersion, Marker, out _)
                .Should().Be(ElfPatchOutcome.NotNeeded, log);
            Directory.GetFiles(native).Should().ContainSingle("no temporary file is left beside the library");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void MsBuildPublish_PatchAlways_PatchesTheCopyWhateverTheSystemHas()
    {
        // What the linux-x64 package of pip-prune gets (PipPatchLibTorchSharpAlways in src/Pip.Cli/Pip.Cli.csproj): the
        // patch after Publish, on any operating system and whether or not this machine's libstdc++ needs it.
        string dir = Directory.CreateTempSubdirectory("pip-patch-always-").FullName;
        try
        {
            string publish = Path.Combine(dir, "publish");
            Directory.CreateDirectory(publish);
            File.Copy(PackagedLibrary(), Path.Combine(publish, "libLibTorchSharp.so"));
            string targets = Path.Combine(RepoRoot(), "src", "Pip.Torch", "buildTransitive", "Pip.Torch.targets");
            File.WriteAllText(Path.Combine(dir, "probe.proj"), $"""
                <Project>
                  <PropertyGroup>
                    <PipPatchLibTorchSharpAlways>true</PipPatchLibTorchSharpAlways>
                    <PublishDir>{publish}{Path.DirectorySeparatorChar}</PublishDir>
                  </PropertyGroup>
                  <Import Project="{targets}" />
                  <Target Name="Publish" />
                </Project>
                """);

            var start = new ProcessStartInfo("dotnet", ["msbuild", "probe.proj", "-t:Publish", "-nologo", "-v:n", "-nr:false"])
            {
                WorkingDirectory = dir,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start)!;
            string log = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();

            process.ExitCode.Should().Be(0, log);
            log.Should().Contain("for every Linux system", "the unconditional patch ran, not the one that asks this system");
            ElfVersionNeedPatcher.Patch(File.ReadAllBytes(Path.Combine(publish, "libLibTorchSharp.so")), ElfVersionNeedPatcher.MissingVersion, ElfVersionNeedPatcher.ReplacementVersion, Marker, out _)
                .Should().Be(ElfPatchOutcome.NotNeeded, log);
            Directory.GetFiles(publish).Should().ContainSingle("no temporary file is left beside the library");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Pip.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Pip.sln not found above " + AppContext.BaseDirectory);
    }
}
