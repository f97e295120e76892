// Shared by two builds:
//  * the MSBuild inline task of Pip.Torch.targets (compiled by RoslynCodeTaskFactory, PIP_LIBRARY undefined),
//  * the Pip.Torch library (PIP_LIBRARY defined), for diagnostics and tests.
// Keep it to APIs available in netstandard2.0.
#nullable enable
#if PIP_LIBRARY
namespace Pip.Torch.Native
{
#endif
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

/// <summary>Outcome of <see cref="ElfVersionNeedPatcher.Patch"/>.</summary>
internal enum ElfPatchOutcome
{
    /// <summary>The file is not a 64-bit little-endian ELF object with a version-needs section.</summary>
    NotApplicable,
    /// <summary>No entry asks for the version that should be rewritten: nothing to do.</summary>
    NotNeeded,
    /// <summary>The version-needs entry was rewritten.</summary>
    Patched,
    /// <summary>Symbols other than the allowed marker are bound to the version, so rewriting it would be unsafe.</summary>
    Refused,
}

/// <summary>
/// Rewrites one version-needs (Vernaux) entry of an ELF shared object so that it asks its dependency for an
/// older symbol version. TorchSharp 0.107's <c>libLibTorchSharp.so</c> asks libstdc++ for <c>GLIBCXX_3.4.32</c>
/// (GCC 13) only because of the marker symbol <c>std::ios_base_library_init</c>, which nothing calls; GCC 12
/// systems (Debian 12, Ubuntu 22.04) lack that version, so the library fails to load there.
/// </summary>
internal static class ElfVersionNeedPatcher
{
    /// <summary>The version TorchSharp 0.107 asks for and GCC 12 systems lack.</summary>
    public const string MissingVersion = "GLIBCXX_3.4.32";

    /// <summary>A version every supported libstdc++ defines and the library already asks for.</summary>
    public const string ReplacementVersion = "GLIBCXX_3.4.21";

    /// <summary>The only symbol allowed to be bound to <see cref="MissingVersion"/>.</summary>
    public const string MarkerSymbol = "_ZSt21ios_base_library_initv";

    private const uint ShtDynsym = 11;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;

    /// <summary>Rewrites, in <paramref name="elf"/>, the need for <paramref name="fromVersion"/> into one for <paramref name="toVersion"/>.</summary>
    /// <param name="elf">The whole file; changed in place when the result is <see cref="ElfPatchOutcome.Patched"/>.</param>
    /// <param name="fromVersion">The version to stop asking for.</param>
    /// <param name="toVersion">The version to ask for instead; must already be in the file's dynamic string table.</param>
    /// <param name="allowedSymbols">Symbols that may be bound to <paramref name="fromVersion"/>; any other makes the result <see cref="ElfPatchOutcome.Refused"/>.</param>
    /// <param name="detail">What was done or why not, for logs.</param>
    public static ElfPatchOutcome Patch(byte[] elf, string fromVersion, string toVersion, ICollection<string> allowedSymbols, out string detail)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
        {
            detail = "not an ELF file";
            return ElfPatchOutcome.NotApplicable;
        }

        if (elf[4] != 2 || elf[5] != 1)
        {
            detail = "not a 64-bit little-endian ELF file";
            return ElfPatchOutcome.NotApplicable;
        }

        ulong shoff = U64(elf, 0x28);
        int shentsize = U16(elf, 0x3A);
        int shnum = U16(elf, 0x3C);
        if (shoff == 0 || shentsize < 64 || shoff + (ulong)shentsize * (ulong)shnum > (ulong)elf.Length)
        {
            detail = "section header table missing or out of range";
            return ElfPatchOutcome.NotApplicable;
        }

        int verneed = -1, versym = -1, dynsym = -1;
        for (int i = 0; i < shnum; i++)
        {
            uint type = U32(elf, (int)shoff + i * shentsize + 4);
            if (type == ShtGnuVerneed) verneed = i;
            else if (type == ShtGnuVersym) versym = i;
            else if (type == ShtDynsym) dynsym = i;
        }

        if (verneed < 0)
        {
            detail = "no .gnu.version_r section";
            return ElfPatchOutcome.NotApplicable;
        }

        int vnHeader = (int)shoff + verneed * shentsize;
        int vnOffset = checked((int)U64(elf, vnHeader + 0x18));
        int vnSize = checked((int)U64(elf, vnHeader + 0x20));
        int strIndex = (int)U32(elf, vnHeader + 0x28);
        int vnCount = (int)U32(elf, vnHeader + 0x2C);
        if (strIndex >= shnum || vnOffset + vnSize > elf.Length)
        {
            detail = ".gnu.version_r section out of range";
            return ElfPatchOutcome.NotApplicable;
        }

        int strHeader = (int)shoff + strIndex * shentsize;
        int strOffset = checked((int)U64(elf, strHeader + 0x18));
        int strSize = checked((int)U64(elf, strHeader + 0x20));
        if (strOffset + strSize > elf.Length)
        {
            detail = "dynamic string table out of range";
            return ElfPatchOutcome.NotApplicable;
        }

        // Find the Vernaux entry that names fromVersion.
        int auxAt = -1;
        int versionIndex = -1;
        int need = vnOffset;
        for (int n = 0; n < vnCount && need >= vnOffset && need + 16 <= vnOffset + vnSize; n++)
        {
            int cnt = U16(elf, need + 2);
            int aux = need + (int)U32(elf, need + 8);
            for (int a = 0; a < cnt && aux >= vnOffset && aux + 16 <= vnOffset + vnSize; a++)
            {
                string name = CString(elf, strOffset, strSize, (int)U32(elf, aux + 8));
                if (name == fromVersion)
                {
                    auxAt = aux;
                    versionIndex = U16(elf, aux + 6) & 0x7fff;
                }

                uint nextAux = U32(elf, aux + 12);
                if (nextAux == 0) break;
                aux += (int)nextAux;
            }

            uint next = U32(elf, need + 12);
            if (next == 0) break;
            need += (int)next;
        }

        if (auxAt < 0)
        {
            detail = "does not ask for " + fromVersion;
            return ElfPatchOutcome.NotNeeded;
        }

        // Every symbol bound to that version must be an allowed marker.
        if (versym >= 0 && dynsym >= 0)
        {
            int symHeader = (int)shoff + dynsym * shentsize;
            int symOffset = checked((int)U64(elf, symHeader + 0x18));
            int symSize = checked((int)U64(elf, symHeader + 0x20));
            int symStrHeader = (int)shoff + (int)U32(elf, symHeader + 0x28) * shentsize;
            int symStrOffset = checked((int)U64(elf, symStrHeader + 0x18));
            int symStrSize = checked((int)U64(elf, symStrHeader + 0x20));
            int verOffset = checked((int)U64(elf, (int)shoff + versym * shentsize + 0x18));
            int symbols = symSize / 24;
            for (int s = 0; s < symbols; s++)
            {
                int index = U16(elf, verOffset + s * 2) & 0x7fff;
                if (index != versionIndex) continue;
                string symbol = CString(elf, symStrOffset, symStrSize, (int)U32(elf, symOffset + s * 24));
                if (!allowedSymbols.Contains(symbol))
                {
                    detail = "symbol " + symbol + " needs " + fromVersion + "; rewriting it would be unsafe";
                    return ElfPatchOutcome.Refused;
                }
            }
        }

        int target = FindString(elf, strOffset, strSize, toVersion);
        if (target < 0)
        {
            detail = toVersion + " is not in the dynamic string table";
            return ElfPatchOutcome.Refused;
        }

        WriteU32(elf, auxAt, ElfHash(toVersion));
        WriteU32(elf, auxAt + 8, (uint)target);
        detail = "rewrote the need for " + fromVersion + " to " + toVersion;
        return ElfPatchOutcome.Patched;
    }

    /// <summary>Whether a library's bytes define (or mention) a symbol version, such as libstdc++ and <c>GLIBCXX_3.4.32</c>.</summary>
    public static bool MentionsVersion(byte[] library, string version)
    {
        byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
        return IndexOf(library, needle, 0, library.Length) >= 0;
    }

    /// <summary>The system's libstdc++ as the dynamic loader would find it on common Linux layouts, or null.</summary>
    public static string? FindSystemLibStdCxx()
    {
        var dirs = new List<string>();
        string? ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld!.Split(':'));
        dirs.AddRange(new[]
        {
            "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu",
            "/usr/lib64", "/lib64", "/usr/lib", "/lib",
        });
        foreach (string dir in dirs)
        {
            if (dir.Length == 0) continue;
            string candidate = Path.Combine(dir, "libstdc++.so.6");
            if (File.Exists(candidate)) return candidate;
        }

        return null;
    }

    /// <summary>The System V ELF hash of a symbol or version name.</summary>
    public static uint ElfHash(string name)
    {
        uint h = 0;
        foreach (char c in name)
        {
            h = (h << 4) + (byte)c;
            uint g = h & 0xf0000000;
            if (g != 0) h ^= g >> 24;
            h &= ~g;
        }

        return h;
    }

    private static int FindString(byte[] elf, int start, int size, string value)
    {
        byte[] needle = Encoding.ASCII.GetBytes(value + "\0");
        int at = IndexOf(elf, needle, start, size);
        return at < 0 ? -1 : at - start;
    }

    private static int IndexOf(byte[] haystack, byte[] needle, int start, int size)
    {
        int end = Math.Min(haystack.Length, start + size) - needle.Length;
        for (int i = start; i <= end; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }

        return -1;
    }

    private static string CString(byte[] elf, int tableOffset, int tableSize, int index)
    {
        if (index < 0 || index >= tableSize) return string.Empty;
        int start = tableOffset + index;
        int end = start;
        while (end < tableOffset + tableSize && elf[end] != 0) end++;
        return Encoding.ASCII.GetString(elf, start, end - start);
    }

    private static int U16(byte[] b, int at) => b[at] | (b[at + 1] << 8);

    private static uint U32(byte[] b, int at) => (uint)(b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24));

    private static ulong U64(byte[] b, int at) => U32(b, at) | ((ulong)U32(b, at + 4) << 32);

    private static void WriteU32(byte[] b, int at, uint v)
    {
        b[at] = (byte)v;
        b[at + 1] = (byte)(v >> 8);
        b[at + 2] = (byte)(v >> 16);
        b[at + 3] = (byte)(v >> 24);
    }
}

#if !PIP_LIBRARY
/// <summary>
/// MSBuild task: patches every libLibTorchSharp.so under a folder, when the system libstdc++ needs it or, with
/// <see cref="Unconditional"/>, always (for copies that travel to other machines, such as a tool package).
/// </summary>
public sealed class PipPatchLibTorchSharp : Microsoft.Build.Utilities.Task
{
    /// <summary>Folder to search (output or publish folder).</summary>
    [Microsoft.Build.Framework.Required]
    public string Directory { get; set; } = string.Empty;

    /// <summary>
    /// Patch whatever this machine's libstdc++ has, on any operating system, and fail when the patch is refused:
    /// for copies that will run elsewhere (the linux-x64 tool package), where the packing machine says nothing
    /// about the machine that runs them.
    /// </summary>
    public bool Unconditional { get; set; }

    /// <inheritdoc />
    public override bool Execute()
    {
        if (!Unconditional && !System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux)) return true;
        if (!System.IO.Directory.Exists(Directory)) return true;
        string[] libraries = System.IO.Directory.GetFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories);
        if (libraries.Length == 0) return true;

        string reason;
        if (Unconditional)
        {
            reason = "for every Linux system: the copy runs elsewhere";
        }
        else
        {
            string? libstdcxx = ElfVersionNeedPatcher.FindSystemLibStdCxx();
            if (libstdcxx == null)
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "Pip: no system libstdc++.so.6 found; TorchSharp's native library left as it is.");
                return true;
            }

            if (ElfVersionNeedPatcher.MentionsVersion(File.ReadAllBytes(libstdcxx), ElfVersionNeedPatcher.MissingVersion))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "Pip: " + libstdcxx + " has " + ElfVersionNeedPatcher.MissingVersion + "; no patch needed.");
                return true;
            }

            reason = "system libstdc++ " + libstdcxx + " lacks " + ElfVersionNeedPatcher.MissingVersion;
        }

        foreach (string library in libraries)
        {
            byte[] bytes = File.ReadAllBytes(library);
            string detail;
            ElfPatchOutcome outcome = ElfVersionNeedPatcher.Patch(bytes, ElfVersionNeedPatcher.MissingVersion, ElfVersionNeedPatcher.ReplacementVersion, new[] { ElfVersionNeedPatcher.MarkerSymbol }, out detail);
            if (outcome == ElfPatchOutcome.Refused)
            {
                if (Unconditional)
                {
                    Log.LogError("Pip: cannot make " + library + " load on systems without " + ElfVersionNeedPatcher.MissingVersion + ": " + detail + " (set PipPatchLibTorchSharp to false to ship it unpatched).");
                }
                else
                {
                    Log.LogWarning("Pip: cannot make " + library + " load with this system's libstdc++: " + detail + ".");
                }

                continue;
            }

            if (outcome != ElfPatchOutcome.Patched) continue;

            // Write beside, then replace: never leave a half-written library, never touch a hard-linked original.
            string temporary = library + ".pip-" + Guid.NewGuid().ToString("N") + ".tmp";
            File.WriteAllBytes(temporary, bytes);
            File.Delete(library);
            File.Move(temporary, library);
            Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, "Pip: " + library + ": " + detail + " (" + reason + ").");
        }

        return !Log.HasLoggedErrors;
    }
}
#endif
#if PIP_LIBRARY
}
#endif
