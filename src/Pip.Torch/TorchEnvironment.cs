using System.Runtime.InteropServices;

namespace Pip.Torch;

/// <summary>What <see cref="TorchEnvironment.UsePassiveOpenMPWait"/> did.</summary>
public enum OpenMPWaitPolicyResult
{
    /// <summary><c>OMP_WAIT_POLICY=PASSIVE</c> was put in the native environment, in time for libtorch's OpenMP runtime to read it.</summary>
    Set,

    /// <summary>The variable was already set (by the user, say) and was left as it is.</summary>
    AlreadySet,

    /// <summary>libtorch's OpenMP runtime was already loaded, so setting the variable would have no effect; nothing was changed.</summary>
    TooLate,

    /// <summary>This platform is not supported (only Linux and macOS are); nothing was changed.</summary>
    Unsupported,
}

/// <summary>Process-wide settings of the native libtorch runtime that must be made before it loads.</summary>
/// <remarks>
/// <para>libtorch's CPU kernels run on OpenMP threads, and OpenMP runtimes by default let idle threads spin for a
/// while before they sleep. Alone on a machine that costs nothing; next to another CPU-bound process (a second
/// <c>pip-prune</c>, a build) the spinning threads steal the cores the other process needs, and both slow down
/// several-fold (measured: the README's first command took 6.2 s alone and 30.7 s beside a second one; 9.6 s with
/// <c>OMP_WAIT_POLICY=PASSIVE</c>). The runtime reads the variable once, when it loads, from the NATIVE environment:
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach it, and after the first TorchSharp
/// call it is too late.</para>
/// <para>Pip's libraries never change this on their own. The <c>pip-prune</c> tool calls
/// <see cref="UsePassiveOpenMPWait"/> first thing (set <c>OMP_WAIT_POLICY</c> yourself, to <c>ACTIVE</c> say, to
/// override it); applications that run libtorch next to other work can do the same, before any TorchSharp call.</para>
/// </remarks>
public static partial class TorchEnvironment
{
    /// <summary>The OpenMP variable this class sets.</summary>
    public const string WaitPolicyVariable = "OMP_WAIT_POLICY";

    /// <summary>
    /// Puts <c>OMP_WAIT_POLICY=PASSIVE</c> into the native process environment unless it is already set, so that idle
    /// OpenMP threads sleep instead of spinning. Call it before the first TorchSharp call; later it has no effect
    /// (and says so). Changes process-wide state: libraries should leave the call to the application.
    /// </summary>
    /// <returns>What was done.</returns>
    public static OpenMPWaitPolicyResult UsePassiveOpenMPWait()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return OpenMPWaitPolicyResult.Unsupported;
        if (!string.IsNullOrEmpty(NativeGetenv(WaitPolicyVariable)))
            return OpenMPWaitPolicyResult.AlreadySet;
        if (OpenMPRuntimeLoaded())
            return OpenMPWaitPolicyResult.TooLate;
        if (setenv(WaitPolicyVariable, "PASSIVE", 0) != 0)
            throw new InvalidOperationException($"setenv({WaitPolicyVariable}) failed with errno {Marshal.GetLastPInvokeError()}.");
        // Keep .NET's view (child processes, Environment.GetEnvironmentVariable) consistent with the native one.
        Environment.SetEnvironmentVariable(WaitPolicyVariable, "PASSIVE");
        return OpenMPWaitPolicyResult.Set;
    }

    /// <summary>The variable's value in the native environment (not .NET's copy), or null.</summary>
    /// <param name="name">The variable.</param>
    internal static string? NativeGetenv(string name)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return Environment.GetEnvironmentVariable(name);
        var pointer = getenv(name);
        return pointer == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(pointer);
    }

    /// <summary>Whether an OpenMP runtime (as libtorch links it) is mapped into this process already (Linux; false elsewhere).</summary>
    internal static bool OpenMPRuntimeLoaded()
    {
        const string maps = "/proc/self/maps";
        if (!OperatingSystem.IsLinux() || !File.Exists(maps))
            return false;
        try
        {
            foreach (var line in File.ReadLines(maps))
            {
                var slash = line.LastIndexOf('/');
                if (slash < 0) continue;
                var file = line.AsSpan(slash + 1);
                if (file.StartsWith("libgomp", StringComparison.Ordinal) || file.StartsWith("libiomp", StringComparison.Ordinal)
                    || file.StartsWith("libomp", StringComparison.Ordinal) || file.StartsWith("libtorch_cpu", StringComparison.Ordinal))
                    return true;
            }
        }
        catch (IOException)
        {
        }

        return false;
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr getenv(string name);
}
