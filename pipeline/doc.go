// Package pipeline is the engine of pipe: the record and batch types and
// their envelope (AWS Lambda's Kafka batch event, byte for byte), the strict
// config decoder with file:line:column problems, the registry through which
// sources, stages and targets plug in under their YAML names, and the runner
// that takes each batch from a source through the stages to a target with
// retries, acknowledging it only once it is done.
//
// Imports point one way: sources, stages and targets import pipeline;
// pipeline imports none of them.
package pipeline
