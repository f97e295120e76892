using static TorchSharp.torch;

namespace Pip.Torch.Tests;

public sealed class TorchEnvironmentTests
{
    [Fact]
    public void UsePassiveOpenMPWait_AfterLibTorchLoaded_ChangesNothingAndSaysWhy()
    {
        using var loaded = ones(1); // libtorch and its OpenMP runtime are loaded from here on
        var before = TorchEnvironment.NativeGetenv(TorchEnvironment.WaitPolicyVariable);

        var result = TorchEnvironment.UsePassiveOpenMPWait();

        var expected = !OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() ? OpenMPWaitPolicyResult.Unsupported
            : !string.IsNullOrEmpty(before) ? OpenMPWaitPolicyResult.AlreadySet
            : OperatingSystem.IsLinux() ? OpenMPWaitPolicyResult.TooLate
            : OpenMPWaitPolicyResult.Set;
        result.Should().Be(expected);
        if (expected != OpenMPWaitPolicyResult.Set)
            TorchEnvironment.NativeGetenv(TorchEnvironment.WaitPolicyVariable).Should().Be(before);
    }

    [Fact]
    public void OpenMPRuntimeLoaded_AfterATorchCall_IsTrueOnLinux()
    {
        using var loaded = ones(1);

        TorchEnvironment.OpenMPRuntimeLoaded().Should().Be(OperatingSystem.IsLinux());
    }
}
