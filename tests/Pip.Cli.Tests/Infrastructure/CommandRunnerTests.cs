using Pip.Checkpoints;
using Pip.Cli.Infrastructure;

namespace Pip.Cli.Tests.Infrastructure;

public sealed class CommandRunnerTests
{
    public static TheoryData<Exception, int> Exceptions() => new()
    {
        { new CheckpointFormatException("/m/config.json", "bad"), ExitCodes.BadInput },
        { new FileNotFoundException("gone"), ExitCodes.BadInput },
        { new InvalidDataException("tokenizer.json: bad"), ExitCodes.BadInput },
        { new CliInputException("bad value"), ExitCodes.BadInput },
        { new InvalidOperationException("boom"), ExitCodes.RuntimeFailure },
        { new OperationCanceledException(), ExitCodes.RuntimeFailure },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void Classify_Exception_GivesItsExitCode(Exception exception, int expected)
    {
        var (code, message) = CommandRunner.Classify(exception, CancellationToken.None);

        code.Should().Be(expected);
        message.Should().Contain(exception.Message);
    }

    [Fact]
    public void Classify_CancellationAfterCtrlC_GivesCancelled()
    {
        using var source = new CancellationTokenSource();
        source.Cancel();

        CommandRunner.Classify(new OperationCanceledException(source.Token), source.Token).Code.Should().Be(ExitCodes.Cancelled);
    }
}
