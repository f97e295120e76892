using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Pip.Tests.Pipeline;

public class PipelineLoggingTests
{
    [Fact]
    public async Task RunAsync_LoggerFactory_LogsStartExclusionsRemovalsAndEnd()
    {
        var logs = new RecordingLoggerFactory();
        var metric = new FixedMetric("fixed", [5, 3, 8, 1]);
        PruningPipeline pipeline = new PipelineBuilder()
            .UseMetric(metric)
            .AddLayerGuard(1, 0)
            .Configure(o => o.Target = PruningTarget.LayerCount(1))
            .UseLoggerFactory(logs)
            .Build();

        await pipeline.RunAsync(new FakeModel(4), Texts.Samples(1));

        logs.Messages.Should().Contain(m => m.Contains("Pruning FakeForCausalLM: 4 layers") && m.Contains("metric fixed"));
        logs.Messages.Should().Contain(m => m.Contains("layer 0 (original 0) excluded by guard"));
        logs.Messages.Should().Contain(m => m.Contains("removed layer 3 (original 3)"));
        logs.Messages.Should().Contain(m => m.Contains("Pruning done after 1 round(s): removed 1 layer(s)") && m.Contains("TargetReached"));
        logs.Categories.Should().Contain(typeof(PruningPipeline).FullName);
    }

    [Fact]
    public async Task Factory_ContainerLoggerFactory_IsUsed()
    {
        var logs = new RecordingLoggerFactory();
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(logs);
        services.AddPip(o => { o.Metric = "random"; o.Target = PruningTarget.LayerCount(1); });
        using ServiceProvider provider = services.BuildServiceProvider();

        await provider.GetRequiredService<IPruningPipelineFactory>().Create().RunAsync(new FakeModel(3), Texts.Samples(1));

        logs.Messages.Should().Contain(m => m.Contains("metric random"));
    }

    private sealed class RecordingLoggerFactory : ILoggerFactory
    {
        public List<string> Messages { get; } = [];

        public List<string> Categories { get; } = [];

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName)
        {
            Categories.Add(categoryName);
            return new Logger(Messages);
        }

        public void Dispose()
        {
        }

        private sealed class Logger(List<string> messages) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                messages.Add(formatter(state, exception));
        }
    }
}
